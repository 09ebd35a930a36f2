# StudyBot: a slim image running as a non-root user, with its database in the /data volume.
# Two stages: the first installs StudyBot and its dependencies into a virtual environment (the wheel carries
# the question bank as package data), the second copies only that environment, without the source tree.
FROM python:3.11-slim AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY bot ./bot
COPY content ./content
RUN python -m venv /opt/studybot \
    && /opt/studybot/bin/pip install .

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/studybot/bin:$PATH \
    STUDYBOT_DB=/data/studybot.db

COPY --from=build /opt/studybot /opt/studybot
RUN useradd --create-home --uid 10001 studybot \
    && mkdir -p /data \
    && chown studybot:studybot /data

USER studybot
WORKDIR /home/studybot
VOLUME ["/data"]
HEALTHCHECK --interval=60s --timeout=10s --start-period=30s --retries=3 CMD ["studybot", "health"]
STOPSIGNAL SIGTERM
CMD ["studybot", "run"]
