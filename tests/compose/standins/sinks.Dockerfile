# Stand-in for mailpit (no registry here) and a Slack incoming-webhook sink, from Debian's python3
# and python3-aiosmtpd: `/mailpit` answers SMTP on 1025 and the part of mailpit's HTTP API the
# compose test reads on 8025; `/mailpit slack` records webhook posts. See sinks.py.
FROM debian:bookworm-slim
RUN apt-get update -q \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      python3 python3-aiosmtpd \
 && rm -rf /var/lib/apt/lists/*
COPY sinks.py /mailpit
RUN chmod 0755 /mailpit
USER nobody
EXPOSE 1025 8025
ENTRYPOINT ["/mailpit"]
