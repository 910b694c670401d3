# The ticktide worker image: `docker build -t ticktide .`; every setting via TICKTIDE_* env.
# Dependencies come from the hashed runtime lock (requirements/runtime.txt, `make lock`) in a layer
# of their own, so a source change does not reinstall them. The embedded broker (the `embedded`
# extra) is left out: the image runs against a Kafka cluster. It runs as UID/GID 10001, no root.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY requirements/runtime.txt requirements/runtime.txt
RUN pip install --require-hashes -r requirements/runtime.txt
COPY pyproject.toml README.md ./
COPY schemas ./schemas
COPY domain ./domain
COPY streams ./streams
COPY tables ./tables
COPY agents ./agents
RUN pip install --no-deps --no-build-isolation . \
    && groupadd --gid 10001 ticktide && useradd --uid 10001 --gid 10001 --create-home ticktide \
    && mkdir -p /var/lib/ticktide && chown 10001:10001 /var/lib/ticktide
USER 10001:10001
ENV TICKTIDE_DATA_DIR=/var/lib/ticktide TICKTIDE_WEB_HOST=0.0.0.0
EXPOSE 6066
ENTRYPOINT ["ticktide"]
CMD ["worker"]
