#  One image for every role of the store: broker, catalog node, order node,
#  HTTP gateway, monitor, command-line client, and the control plane's etcd
#  member (Debian's etcd-server), chosen by the command
#  (etc/docker-entrypoint.sh):
#
#    docker run bookstore broker
#    docker run bookstore catalog --id catalog-1 --pub-endpoint tcp://catalog-1:5570 ...
#    docker run bookstore cli --endpoint tcp://broker:5555 status
#
#  Built with the project's Makefile on Debian 12; runs on Debian 12 slim
#  with the runtime libraries only, as an unprivileged user, with LMDB data
#  in the /data volume.  compose.yaml runs a whole cluster.

#  ---- build ---------------------------------------------------------------
FROM debian:bookworm AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        build-essential pkg-config libczmq-dev libzmq3-dev liblmdb-dev libmsgpack-dev \
        libmicrohttpd-dev libjansson-dev libcurl4-openssl-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
#  The programs only (no tests, no benchmark tools), without debug symbols
RUN make -j"$(nproc)" VARIANT=release \
        bin/bookstore-broker bin/bookstore-node bin/bookstore bin/bookstore-gateway \
        bin/bookstore-monitor bin/bookstore-cluster \
 && strip bin/bookstore*

#  ---- run -----------------------------------------------------------------
FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        libczmq4 libzmq5 liblmdb0 libmsgpackc2 libmicrohttpd12 libjansson4 libcurl4 \
        etcd-server \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt/* /var/log/dpkg.log \
 && groupadd --system --gid 10001 bookstore \
 && useradd --system --uid 10001 --gid bookstore --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin bookstore \
 && install -d -o bookstore -g bookstore -m 0750 /data
COPY --from=build /src/bin/ /usr/local/bin/
#  bookstore-cluster finds the initial catalog at ../share/bookstore beside
#  its program; catalog nodes are pointed at it by BOOKSTORE_SEED
COPY etc/catalog.cfg /usr/local/share/bookstore/catalog.cfg
COPY etc/docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
COPY etc/docker-healthcheck.sh /usr/local/bin/bookstore-healthcheck
ENV BOOKSTORE_SEED=/usr/local/share/bookstore/catalog.cfg
USER bookstore
WORKDIR /data
VOLUME /data
#  Broker: clients, nodes, cache invalidations, feed.  Nodes: replication
#  log and fetches.  Gateway: HTTP.  etcd: clients, peers.
EXPOSE 5555 5556 5557 5558 5570 5571 8080 2379 2380
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 CMD ["bookstore-healthcheck"]
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["help"]
