# Keyworking Gateway image: one image, several processes (serve, worker, beat, mllp) chosen by the command.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    KWG_HOME=/var/lib/kwg

RUN useradd --system --home /var/lib/kwg --create-home kwg
WORKDIR /app
COPY pyproject.toml README.md ./
COPY gateway ./gateway
COPY mappings ./mappings
COPY connectors ./connectors
COPY profiles ./profiles
RUN pip install --no-cache-dir .

USER kwg
EXPOSE 8080
CMD ["kwg", "serve", "--host", "0.0.0.0", "--port", "8080", "--workers", "2"]
