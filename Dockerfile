# Image for the api, worker, beat and emulator services of docker-compose.yml.
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY notifier ./notifier
COPY workers ./workers
COPY config ./config
RUN pip install . && useradd --system --home /app notifier && mkdir -p /app/var && chown notifier /app/var
USER notifier
EXPOSE 8000 9099
CMD ["notifier", "api"]
