# Stand-in for rust:1.95-slim-bookworm (no registry here): Debian bookworm-security's rustc-web and
# cargo-web with gcc and libc6-dev, laid out like the official image (CARGO_HOME on PATH).
# Made by tests/compose/images.sh; only this stand-in trusts the host's CA bundle (crates.io).
FROM debian:bookworm-slim
RUN apt-get update -q \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      rustc-web cargo-web gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
# After the packages: installing ca-certificates regenerates this file.
COPY host-ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
ENV CARGO_HOME=/usr/local/cargo \
    PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
RUN mkdir -p /usr/local/cargo/bin && rustc --version && cargo --version
