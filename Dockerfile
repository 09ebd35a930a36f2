# StudyBot: a slim image running as a non-root user, with its database in the /data volume.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    STUDYBOT_DB=/data/studybot.db \
    STUDYBOT_CONTENT=/app/content

WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY content ./content
RUN pip install . \
    && useradd --create-home --uid 10001 studybot \
    && mkdir -p /data \
    && chown studybot:studybot /data

USER studybot
VOLUME ["/data"]
HEALTHCHECK --interval=60s --timeout=10s --start-period=30s --retries=3 CMD ["studybot", "health"]
STOPSIGNAL SIGTERM
CMD ["studybot", "run"]
