# Undersigned in production: migrations, then several uvicorn workers on port 8000.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin undersigned
WORKDIR /srv/undersigned

COPY pyproject.toml README.md alembic.ini ./
COPY app ./app
COPY migrations ./migrations
COPY templates ./templates
# Editable install: templates/ and migrations/ are read from this folder, next to the package.
RUN pip install -e . && mkdir -p var && chown undersigned:undersigned var

USER undersigned
# Set UNDERSIGNED_SECRET_KEY, UNDERSIGNED_SMTP_HOST, UNDERSIGNED_ALLOWED_EMAIL_DOMAINS and (for several
# workers or containers) a PostgreSQL UNDERSIGNED_DATABASE_URL when running; production refuses defaults.
ENV UNDERSIGNED_ENVIRONMENT=production \
    UNDERSIGNED_DATABASE_URL=sqlite:////srv/undersigned/var/undersigned.db \
    WEB_CONCURRENCY=4

EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s --retries=3 \
    CMD python -c "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status != 200)"

CMD ["sh", "-c", "undersigned db upgrade && exec undersigned serve --host 0.0.0.0 --port 8000 --workers \"$WEB_CONCURRENCY\""]
