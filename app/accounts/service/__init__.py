"""Account rules, in parts along their seams; callers use them through this package
(`from app.accounts import service as accounts`).

Replies never reveal whether an address has an account: requests for codes and links answer the same way
either way, and the owner of an existing account is told by email instead.

- `addresses`: finding accounts, and the addresses and passwords they take;
- `codes`: one-time codes and links, mailed and used once;
- `signing_in`: sign-up, confirming the address, signing in by password or link, resetting the password;
- `notification_email`: the personal address for platform mail;
- `roles`: the accounts list, roles, the first admin.
"""

from app.accounts.service.addresses import get_by_email, get_or_404, normalize_email, sign_up_checks
from app.accounts.service.codes import ASKED, CODE_DEADLINE_STEP, EXPIRED_CODE, WRONG_CODE, code_by_link
from app.accounts.service.notification_email import (
    remove_notification_email,
    require_pending_notification_email,
    set_notification_email,
    verify_notification_email,
)
from app.accounts.service.roles import (
    ALREADY_HOLDS,
    DOES_NOT_HOLD,
    create_admin,
    grant_role,
    list_accounts,
    revoke_role,
)
from app.accounts.service.signing_in import (
    SignedIn,
    request_password_reset,
    request_sign_in_link,
    resend_verification,
    reset_password,
    sign_in,
    sign_in_by_link,
    sign_up,
    verify_by_code,
    verify_by_link,
)

__all__ = [
    "ALREADY_HOLDS",
    "ASKED",
    "CODE_DEADLINE_STEP",
    "DOES_NOT_HOLD",
    "EXPIRED_CODE",
    "WRONG_CODE",
    "SignedIn",
    "code_by_link",
    "create_admin",
    "get_by_email",
    "get_or_404",
    "grant_role",
    "list_accounts",
    "normalize_email",
    "remove_notification_email",
    "request_password_reset",
    "request_sign_in_link",
    "require_pending_notification_email",
    "resend_verification",
    "reset_password",
    "revoke_role",
    "set_notification_email",
    "sign_in",
    "sign_in_by_link",
    "sign_up",
    "sign_up_checks",
    "verify_by_code",
    "verify_by_link",
    "verify_notification_email",
]
