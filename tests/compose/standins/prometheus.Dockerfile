# Stand-in for prom/prometheus (no registry here): Debian's Prometheus 2.42, laid out like the
# official image (data in /prometheus owned by nobody, busybox-like
# wget for the compose health check). docker-compose.yml's command line works unchanged.
FROM debian:bookworm-slim
RUN apt-get update -q \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus wget \
 && rm -rf /var/lib/apt/lists/*
RUN mkdir -p /prometheus && chown nobody:nogroup /prometheus
USER nobody
WORKDIR /prometheus
EXPOSE 9090
ENTRYPOINT ["/usr/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
