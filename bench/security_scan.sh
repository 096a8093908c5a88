#!/usr/bin/env bash
# External scans (issue #10): wapiti and sqlmap against a running instance with the demo organization.
#
#   bench/security_scan.sh                      # scratch SQLite database
#   SCAN_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/undersigned_scan bench/security_scan.sh
#
# The PostgreSQL database named by SCAN_DATABASE_URL must exist and be empty; it is migrated and seeded here,
# and the scanners fill it with drafts, comments and flags: give each run a new one.
#
# The server runs with production settings (HSTS, Secure cookies, no development mailbox, a random secret,
# no mail actually sent) on plain HTTP on 127.0.0.1: the scanners get the session cookies directly, as a
# browser behind the TLS proxy would send them. The rate limits are raised, or both tools would only meet
# "429 Too many requests" after their first few requests (the limits themselves are tested in the suite).
#
# Reports go to var/security-scan/<UTC timestamp>/ (wapiti HTML and JSON, sqlmap logs, server log,
# summary.txt). Bounded: wapiti by --max-scan-time and --max-attack-time, each sqlmap target by `timeout`.
# SCAN_WAPITI_CRAWL_SECONDS, SCAN_WAPITI_ATTACK_SECONDS, SCAN_SQLMAP_SECONDS and SCAN_SQLMAP_LEVEL adjust them.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

export DEBIAN_FRONTEND=noninteractive
missing_packages=()
command -v sqlmap >/dev/null 2>&1 || missing_packages+=(sqlmap)
command -v wapiti >/dev/null 2>&1 || missing_packages+=(wapiti)
if ((${#missing_packages[@]})); then
  apt-get update -qq
  apt-get install -y -qq "${missing_packages[@]}" >/dev/null
fi

CRAWL_SECONDS=${SCAN_WAPITI_CRAWL_SECONDS:-150}
ATTACK_SECONDS=${SCAN_WAPITI_ATTACK_SECONDS:-60}
PUBLIC_CRAWL_SECONDS=$(((CRAWL_SECONDS + 1) / 2))
PUBLIC_ATTACK_SECONDS=$(((ATTACK_SECONDS + 2) / 3))
SQLMAP_SECONDS=${SCAN_SQLMAP_SECONDS:-120}
SQLMAP_LEVEL=${SCAN_SQLMAP_LEVEL:-2}

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT="$ROOT/var/security-scan/$STAMP"
mkdir -p "$OUT"
started=$SECONDS

PORT=$(.venv/bin/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
BASE="http://127.0.0.1:$PORT"
if [[ -n "${SCAN_DATABASE_URL:-}" ]]; then
  DATABASE_URL=$SCAN_DATABASE_URL
  DBMS=PostgreSQL
else
  DATABASE_URL="sqlite:///$OUT/scan.db"
  DBMS=SQLite
fi

export UNDERSIGNED_ENVIRONMENT=production
export UNDERSIGNED_DATABASE_URL=$DATABASE_URL
export UNDERSIGNED_BASE_URL=$BASE
UNDERSIGNED_SECRET_KEY=$(.venv/bin/python -c 'import secrets; print(secrets.token_urlsafe(48))')
export UNDERSIGNED_SECRET_KEY
# Production refuses to start without SMTP; nothing is delivered, since only `undersigned worker` sends.
export UNDERSIGNED_SMTP_HOST=127.0.0.1 UNDERSIGNED_SMTP_PORT=9
export UNDERSIGNED_RATE_LIMIT_SIGN_IN=10000/minute UNDERSIGNED_RATE_LIMIT_SIGN_UP=10000/minute
export UNDERSIGNED_RATE_LIMIT_CODE_REQUEST=10000/minute UNDERSIGNED_RATE_LIMIT_CODE_CHECK=10000/minute
export UNDERSIGNED_RATE_LIMIT_SIGN=10000/minute UNDERSIGNED_RATE_LIMIT_COMMENT=10000/minute
export UNDERSIGNED_RATE_LIMIT_SIGN_IN_ADDRESS=10000/minute UNDERSIGNED_SIGN_IN_FAILURE_BUDGET=10000/minute
export UNDERSIGNED_RATE_LIMIT_CODE_REQUEST_ADDRESS=10000/minute

if [[ $DBMS == PostgreSQL ]] && .venv/bin/python - "$DATABASE_URL" <<'PY'
import sys

from sqlalchemy import create_engine, inspect

sys.exit(0 if inspect(create_engine(sys.argv[1])).get_table_names() else 1)
PY
then
  # The demo accounts' addresses are sealed and indexed under this run's random secret: seeding a database
  # made under another secret would add a second set of them.
  echo "$DATABASE_URL already has tables: give the scan a new, empty database" >&2
  exit 1
fi
DEMO_PASSWORD=$(.venv/bin/python -c 'from app.demo import DEMO_PASSWORD; print(DEMO_PASSWORD)')

echo "Scan of $BASE ($DBMS, environment production), reports in ${OUT#"$ROOT"/}"
.venv/bin/undersigned db upgrade >"$OUT/setup.log" 2>&1
.venv/bin/undersigned demo seed >>"$OUT/setup.log" 2>&1

.venv/bin/undersigned serve --host 127.0.0.1 --port "$PORT" >"$OUT/server.log" 2>&1 &
server_pid=$!
stop_server() {
  kill "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
}
trap stop_server EXIT
for _ in $(seq 1 60); do
  curl -fs "$BASE/healthz" >/dev/null 2>&1 && break
  kill -0 "$server_pid" 2>/dev/null || { echo "The server did not start: see $OUT/server.log" >&2; exit 1; }
  sleep 0.5
done

# Signs in through the page, as a browser does: a CSRF seed cookie of our own, the form's token for it, then
# the session cookie from the response (read from the header: curl keeps no Secure cookie over HTTP).
# Prints "<session id> <csrf seed> <csrf token>".
sign_in() {
  local email=$1 seed token headers session
  seed=$(.venv/bin/python -c 'import secrets; print(secrets.token_urlsafe(32))')
  token=$(curl -fsS -b "undersigned_csrf=$seed" "$BASE/signin" \
    | sed -n 's/.*name="csrf_token" value="\([^"]*\)".*/\1/p' | head -1)
  headers=$(curl -sS -o /dev/null -D - -b "undersigned_csrf=$seed" \
    --data-urlencode "email=$email" --data-urlencode "password=$DEMO_PASSWORD" \
    --data-urlencode "csrf_token=$token" --data-urlencode "next=/" "$BASE/signin")
  session=$(sed -n 's/^set-cookie: undersigned_session=\([^;]*\);.*/\1/Ip' <<<"$headers" | tr -d '\r')
  [[ -n "$session" ]] || { echo "Signing in as $email failed" >&2; return 1; }
  echo "$session $seed $token"
}
worker=$(sign_in ana@example.org)
admin=$(sign_in admin@example.org)
moderator=$(sign_in morgan@example.org)
read -r WORKER_SESSION WORKER_SEED WORKER_TOKEN <<<"$worker"
read -r ADMIN_SESSION ADMIN_SEED ADMIN_TOKEN <<<"$admin"
read -r MODERATOR_SESSION MODERATOR_SEED MODERATOR_TOKEN <<<"$moderator"
WORKER_COOKIE="undersigned_session=$WORKER_SESSION; undersigned_csrf=$WORKER_SEED"
ADMIN_COOKIE="undersigned_session=$ADMIN_SESSION; undersigned_csrf=$ADMIN_SEED"
MODERATOR_COOKIE="undersigned_session=$MODERATOR_SESSION; undersigned_csrf=$MODERATOR_SEED"
for check in "$WORKER_COOKIE /account" "$ADMIN_COOKIE /admin/users" "$MODERATOR_COOKIE /moderation"; do
  status=$(curl -sS -o /dev/null -w '%{http_code}' -b "${check% *}" "$BASE${check##* }")
  [[ $status == 200 ]] || { echo "A demo session does not open ${check##* } ($status)" >&2; exit 1; }
done

# Debian's wapiti 3.0.4 builds its --exclude patterns with a regular expression Python 3.11 refuses (global
# flags after the start), so it is run with that one function replaced, by the interpreter it was packaged for.
run_wapiti() {
  "$(sed -n '1s/^#!//p' "$(command -v wapiti)")" - "$@" <<'PY'
import re
import sys

from wapitiCore.main.wapiti import wapiti_main
from wapitiCore.net import crawler


def wildcard_translate(pattern):
    return re.compile("(?ms)" + "".join(".*" if char == "*" else re.escape(char) for char in pattern) + r"\Z")


crawler.wildcard_translate = wildcard_translate
sys.argv[0] = "wapiti"
sys.exit(wapiti_main())
PY
}

# wapiti's cookie file: the cookies a browser would hold (not marked Secure here, or they would not be sent
# over plain HTTP to 127.0.0.1).
cookie_file() {
  .venv/bin/python - "$@" <<'PY'
import json
import sys

path, *pairs = sys.argv[1:]
attributes = {"expires": None, "secure": False, "port": None, "version": 0}
cookies = {name: {**attributes, "value": value} for name, value in (pair.split("=", 1) for pair in pairs)}
with open(path, "w") as out:
    json.dump({"127.0.0.1": {"/": cookies}}, out, indent=1)
PY
}

# One wapiti pass: crawl from / (and the given start pages), then attack. The CSRF token field is not attacked
# (a changed token is refused before anything else runs: the csrf module checks that separately).
# Sign-out forms would end the session mid-scan, and closing petition 1 would remove most of its forms.
wapiti_pass() {
  local name=$1 cookies=$2 crawl=$3 attack=$4 modules=$5
  shift 5
  local starts=()
  for page in "$@"; do starts+=(-s "$BASE$page"); done
  echo "wapiti ($name): crawl up to ${crawl}s, then up to ${attack}s for each module ($modules)"
  run_wapiti -u "$BASE/" --scope folder -c "$cookies" "${starts[@]}" \
    -x "$BASE/signout*" -x "$BASE/petitions/1/close" -x "$BASE/static/*" --skip csrf_token \
    -m "$modules" -l 1 -d 6 -S normal -t 10 --max-scan-time "$crawl" --max-attack-time "$attack" \
    --store-session "$OUT/wapiti-$name/session" --store-config "$OUT/wapiti-$name/config" --flush-session \
    --no-bugreport -v 1 -f json -o "$OUT/wapiti-$name.json" >"$OUT/wapiti-$name.log" 2>&1 \
    || echo "wapiti ($name) exited with $?"
  # The same findings as HTML, from the stored session (nothing is sent again).
  run_wapiti -u "$BASE/" --scope folder --skip-crawl -m "" --store-session "$OUT/wapiti-$name/session" \
    --store-config "$OUT/wapiti-$name/config" --no-bugreport -f html -o "$OUT/wapiti-$name/report" \
    >/dev/null 2>&1 || true
}

# The "backup" module is left out: 3.0.4 breaks on a URL with a port ("Port could not be cast to integer").
# "ssrf" and "xxe" need wapiti's public endpoint on the Internet, which a scan of 127.0.0.1 cannot reach back.
WAPITI_MODULES=sql,blindsql,xss,permanentxss,exec,file,redirect,crlf,csrf,http_headers,cookieflags,csp,methods,htaccess
WAPITI_PUBLIC_MODULES=sql,blindsql,xss,exec,file,redirect,crlf,csrf,cookieflags
PUBLIC_SEED=$(.venv/bin/python -c 'import secrets; print(secrets.token_urlsafe(32))')
PUBLIC_TOKEN=$(curl -fsS -b "undersigned_csrf=$PUBLIC_SEED" "$BASE/signin" \
  | sed -n 's/.*name="csrf_token" value="\([^"]*\)".*/\1/p' | head -1)
wapiti_started=$SECONDS
# First signed out, before the signed-in pass fills the petitions with its test comments for this one to
# crawl: the sign-in, sign-up, emailed-link, reset and confirmation forms, which redirect a signed-in visitor.
cookie_file "$OUT/wapiti-public-cookies.json" "undersigned_csrf=$PUBLIC_SEED"
wapiti_pass public "$OUT/wapiti-public-cookies.json" "$PUBLIC_CRAWL_SECONDS" "$PUBLIC_ATTACK_SECONDS" \
  "$WAPITI_PUBLIC_MODULES" "/signin?next=/petitions" /signup /signin/link /password/forgot /verify
cookie_file "$OUT/wapiti-worker-cookies.json" "undersigned_session=$WORKER_SESSION" "undersigned_csrf=$WORKER_SEED"
# As ana: a worker, and the organizer of petition 1 (its update, correction, co-organizer and export forms).
wapiti_pass worker "$OUT/wapiti-worker-cookies.json" "$CRAWL_SECONDS" "$ATTACK_SECONDS" "$WAPITI_MODULES" \
  /petitions/new /account "/petitions?q=salary" "/signin?next=/petitions"
wapiti_seconds=$((SECONDS - wapiti_started))

# ---- sqlmap: representative endpoints with parameters, authenticated where the endpoint needs it. ----
# Each target: "name|role|method|url|data". The CSRF token is fixed for a seed cookie, so it is sent as is and
# never injected into; the cookies are injected into on one page only (elsewhere that only signs out).
SQLMAP_TARGETS=(
  "petition-search-page|worker|GET|$BASE/petitions?q=salary&category=pay&sort=most_signed&state=open&page=1|"
  "petition-search-api|public|GET|$BASE/api/v1/petitions?q=salary&category=pay&sort=newest&page=1&per_page=20|"
  "similar-petitions-api|worker|GET|$BASE/api/v1/petitions/similar?title=salary%20bands&ask=publish|"
  "petition-by-id-api|public|GET|$BASE/api/v1/petitions/1*|"
  "comments-api|public|GET|$BASE/api/v1/petitions/1/comments?sort=top&limit=10|"
  "log-entries-api|public|GET|$BASE/api/v1/petitions/1/log/entries?start=0&limit=10|"
  "admin-account-search|admin|GET|$BASE/admin/users?q=ana&page=1|"
  "sign-in-form|public|POST|$BASE/signin|email=nobody%40example.org&password=wrong-password-1&next=%2F&csrf_token=TOKEN"
  "sign-up-form|public|POST|$BASE/signup|display_name=New%20Worker&email=new.worker%40example.org&password=a-long-password-1&csrf_token=TOKEN"
  "password-reset-form|public|POST|$BASE/password/forgot|email=ana%40example.org&csrf_token=TOKEN"
  "draft-petition-api|worker|POST|$BASE/api/v1/petitions|{\"title\": \"Bike racks at the depot\", \"ask\": \"Install covered bike racks at the depot.\", \"background\": \"Many of us cycle.\", \"category\": \"workplace\"}"
  "comment-form|worker|POST|$BASE/petitions/1/comments|body=A%20reasoned%20comment&csrf_token=TOKEN"
  "void-rule-preview-api|moderator|POST|$BASE/api/v1/moderation/petitions/1/invalidations/preview|{\"rule\": \"@example.org\"}"
)
mkdir -p "$OUT/sqlmap"
sqlmap_started=$SECONDS
: >"$OUT/sqlmap-summary.txt"
for target in "${SQLMAP_TARGETS[@]}"; do
  IFS='|' read -r name role method url data <<<"$target"
  case $role in
    worker) cookie=$WORKER_COOKIE token=$WORKER_TOKEN ;;
    admin) cookie=$ADMIN_COOKIE token=$ADMIN_TOKEN ;;
    moderator) cookie=$MODERATOR_COOKIE token=$MODERATOR_TOKEN ;;
    *) cookie="undersigned_csrf=$PUBLIC_SEED" token=$PUBLIC_TOKEN ;;
  esac
  skip=csrf_token
  [[ $name == petition-search-page ]] || skip+=",undersigned_session,undersigned_csrf"
  options=(--batch --disable-coloring --threads=1 --dbms="$DBMS" --level="$SQLMAP_LEVEL" --risk=1 --time-sec=2
           --output-dir="$OUT/sqlmap" --flush-session -u "$url" --method="$method" --skip="$skip"
           --cookie="$cookie" --drop-set-cookie -H "X-CSRF-Token: $token")
  [[ -z "$data" ]] || options+=(--data="${data//TOKEN/$token}")
  # A refused sign-in is answered 401 with the form again, which sqlmap would otherwise take as a dead end;
  # each try of a password costs an argon2 hash, so only the fields that reach the database are tried.
  [[ $name != sign-in-form ]] || options+=(--ignore-code=401 -p email,password)
  [[ $name != sign-up-form ]] || options+=(-p email,display_name)
  target_started=$SECONDS
  status=0
  timeout "$SQLMAP_SECONDS" sqlmap "${options[@]}" >"$OUT/sqlmap/$name.log" 2>&1 || status=$?
  verdict=$( (grep -E "is vulnerable|might be injectable|appears to be .* injectable|do not appear to be injectable|no parameter\(s\) found|\[(ERROR|CRITICAL)\]" \
    "$OUT/sqlmap/$name.log" || true) | sed -e 's/^\[[0-9:]*\] //' -e 's/\. Try to increase.*//' | sort -u | tr '\n' ' ')
  [[ $status == 124 ]] && verdict="stopped at ${SQLMAP_SECONDS}s; $verdict"
  printf '%-24s %4ss  %s\n' "$name" "$((SECONDS - target_started))" "${verdict:-see log}" | tee -a "$OUT/sqlmap-summary.txt"
done
sqlmap_seconds=$((SECONDS - sqlmap_started))

stop_server
trap - EXIT

{
  echo "Security scan of $BASE, $STAMP ($DBMS, environment production)"
  echo "wapiti $(wapiti --version 2>/dev/null | sed -n 's/^Wapiti-\([0-9.]*\).*/\1/p' | head -1), sqlmap $(sqlmap --version 2>/dev/null | head -1)"
  echo "wapiti ${wapiti_seconds}s, sqlmap ${sqlmap_seconds}s, total $((SECONDS - started))s"
  for pass in public worker; do
    echo
    echo "wapiti, $pass pass: $(grep -o 'Wapiti found [0-9]* URLs and forms' "$OUT/wapiti-$pass.log" || echo 'crawl unknown');" \
      "modules that ran out of time: $(grep -o 'reached for module [a-z_]*' "$OUT/wapiti-$pass.log" | awk '{print $4}' | tr '\n' ' ')"
    .venv/bin/python - "$OUT/wapiti-$pass.json" <<'PY'
import json
import sys
from collections import Counter

try:
    report = json.load(open(sys.argv[1]))
except (OSError, ValueError) as error:
    sys.exit(f"  no report: {error}")
found = False
for kind in ("vulnerabilities", "anomalies"):
    for category, findings in sorted(report.get(kind, {}).items()):
        for (method, path, parameter, info), count in Counter(
                (f.get("method", ""), f.get("path", ""), f.get("parameter", ""), f.get("info", "")[:160])
                for f in findings).items():
            found = True
            print(f"  {category}: {method} {path} [{parameter}] {info}" + (f" (x{count})" if count > 1 else ""))
if not found:
    print("  no vulnerabilities or anomalies")
PY
  done
  echo
  echo "sqlmap (dbms $DBMS, level $SQLMAP_LEVEL, risk 1, at most ${SQLMAP_SECONDS}s a target):"
  sed 's/^/  /' "$OUT/sqlmap-summary.txt"
  echo
  echo "server: $(grep -c '"status": 5[0-9][0-9]' "$OUT/server.log" || true) responses 5xx," \
    "$(grep -c '"unhandled error"' "$OUT/server.log" || true) unhandled errors (server.log)"
} >"$OUT/summary.txt"
cat "$OUT/summary.txt"
