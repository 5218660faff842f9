# tagsweep: one image for workers, the simulator and Flower.
FROM python:3.11-slim

WORKDIR /app
COPY pyproject.toml README.md ./
COPY worker ./worker
COPY producer ./producer
COPY simulator ./simulator
COPY examples ./examples
RUN pip install --no-cache-dir ".[flower]" \
    && useradd --create-home tagsweep
USER tagsweep

# Workers log one JSON object a line on stdout.
ENV TAGSWEEP_LOG_FORMAT=json
CMD ["tagsweep", "--help"]
