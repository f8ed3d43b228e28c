# pubtrail service image.
#   docker build -t pubtrail .
#   docker run --rm -v pubtrail-data:/data pubtrail keygen --origin example.org/log   # once
#   docker run -d -p 8000:8000 -v pubtrail-data:/data -e PUBTRAIL_ORIGIN=example.org/log \
#              -e PUBTRAIL_ADMIN_TOKEN=... pubtrail
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PUBTRAIL_DATA_DIR=/data

WORKDIR /srv/pubtrail
COPY pyproject.toml README.md ./
COPY app ./app
RUN pip install --no-cache-dir . \
    && useradd --system --uid 10001 --home-dir /data pubtrail \
    && mkdir -p /data && chown pubtrail:pubtrail /data

USER pubtrail
VOLUME ["/data"]
EXPOSE 8000
ENTRYPOINT ["pubtrail"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
