# The ticktide worker image: `docker build -t ticktide .`; every setting via TICKTIDE_* env.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY schemas ./schemas
COPY domain ./domain
COPY streams ./streams
COPY tables ./tables
COPY agents ./agents
RUN pip install . && useradd --create-home ticktide && mkdir -p /var/lib/ticktide \
    && chown ticktide /var/lib/ticktide
USER ticktide
ENV TICKTIDE_DATA_DIR=/var/lib/ticktide TICKTIDE_WEB_HOST=0.0.0.0
EXPOSE 6066
ENTRYPOINT ["ticktide"]
CMD ["worker"]
