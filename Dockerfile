# The latency service: FastAPI on uvicorn, no torch (the agent extra is not installed).
#   docker build -t splitnas-api .
#   docker run -p 8000:8000 -e SPLITNAS_DATABASE_URL=postgresql+psycopg://user:pass@host/splitnas splitnas-api
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
# only the packages the service imports: api -> predictor -> db, spaces
COPY pyproject.toml README.md alembic.ini ./
COPY spaces ./spaces
COPY db ./db
COPY predictor ./predictor
COPY api ./api
RUN pip install ".[postgres]" \
    && python -c "import api.main, sys; assert 'torch' not in sys.modules" \
    && useradd --create-home --uid 10001 splitnas

USER splitnas
ENV SPLITNAS_API_HOST=0.0.0.0 \
    SPLITNAS_API_PORT=8000
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"
# the schema is migrated when the service starts
CMD ["splitnas-api", "serve", "--no-access-log"]
