# pubtrail service image.
#   docker build -t pubtrail .
#   docker run -d -p 8000:8000 -v pubtrail-data:/data -e PUBTRAIL_ORIGIN=example.org/log \
#              -e PUBTRAIL_ADMIN_TOKEN=... pubtrail
#   docker logs <container>   # first start: "log verifier key: ..." (pin it)
# On the first start with an empty /data volume the entrypoint creates the log
# signing key there (scripts/docker-entrypoint.sh); no key is ever in the image
# or its build context (.dockerignore). To use a key made elsewhere, put it at
# /data/log-signing.key (or set PUBTRAIL_SIGNING_KEY_FILE) before the first start.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PUBTRAIL_DATA_DIR=/data

WORKDIR /srv/pubtrail
COPY pyproject.toml README.md ./
COPY app ./app
COPY scripts/docker-entrypoint.sh /usr/local/bin/pubtrail-entrypoint
RUN pip install --no-cache-dir . \
    && useradd --system --uid 10001 --home-dir /data pubtrail \
    && mkdir -p /data && chown pubtrail:pubtrail /data && chmod 0700 /data

USER pubtrail
VOLUME ["/data"]
EXPOSE 8000
ENTRYPOINT ["pubtrail-entrypoint"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
