# Stand-in for python:3.11-slim-bookworm (no registry here): Debian's python3 (3.11) with pip and
# venv, `python3`/`pip` on PATH as in the official image. Made by tests/compose/images.sh; only
# this stand-in trusts the host's CA bundle (PyPI).
FROM debian:bookworm-slim
RUN apt-get update -q \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      python3 python3-pip python3-venv \
 && rm -rf /var/lib/apt/lists/* \
 && ln -s /usr/bin/python3 /usr/local/bin/python \
 && rm -f /usr/lib/python3.11/EXTERNALLY-MANAGED
# After the packages: installing ca-certificates regenerates this file.
COPY host-ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt PIP_CERT=/etc/ssl/certs/ca-certificates.crt
CMD ["python3"]
