# A stand-in for postgres:15 made from Debian 12's PostgreSQL 15, for machines that cannot reach Docker Hub
# (deploy/compose.local-images.yaml). It honours what compose.yaml uses of the official image: POSTGRES_USER,
# POSTGRES_PASSWORD and POSTGRES_DB on first start, data in /var/lib/postgresql/data, pg_isready.
ARG DEBIAN_IMAGE=debian:bookworm-slim
FROM ${DEBIAN_IMAGE}
# No default cluster: the entrypoint makes one in the data volume on first start.
RUN mkdir -p /etc/postgresql-common/createcluster.d \
    && echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.d/no-main-cluster.conf \
    && apt-get update \
    && apt-get install -y --no-install-recommends postgresql-15 \
    && rm -rf /var/lib/apt/lists/* \
    && install -d -o postgres -g postgres -m 0700 /var/lib/postgresql/data \
    && install -d -o postgres -g postgres -m 2775 /var/run/postgresql
COPY postgres-entrypoint.sh /usr/local/bin/postgres-entrypoint.sh
ENV PATH=/usr/lib/postgresql/15/bin:$PATH \
    PGDATA=/var/lib/postgresql/data
USER postgres
# SIGINT is PostgreSQL's fast shutdown (as in the official image): open sessions end, nothing is lost.
STOPSIGNAL SIGINT
EXPOSE 5432
ENTRYPOINT ["/usr/local/bin/postgres-entrypoint.sh"]
