# Stand-in for prom/alertmanager (no registry here): Debian's Alertmanager 0.25, laid out like the
# official image (data in /alertmanager owned by nobody, wget for the compose health check).
FROM debian:bookworm-slim
RUN apt-get update -q \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      prometheus-alertmanager wget \
 && rm -rf /var/lib/apt/lists/*
RUN mkdir -p /alertmanager && chown nobody:nogroup /alertmanager
USER nobody
WORKDIR /alertmanager
EXPOSE 9093
ENTRYPOINT ["/usr/bin/prometheus-alertmanager"]
CMD ["--config.file=/etc/alertmanager/alertmanager.yml", "--storage.path=/alertmanager"]
