# Stand-in for the nginx image of the API gateway (no registry here): Debian's nginx 1.22, with
# the official image's paths (/usr/sbin/nginx, /etc/nginx/nginx.conf) and wget for the health check.
FROM debian:bookworm-slim
RUN apt-get update -q \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends nginx-light wget \
 && rm -rf /var/lib/apt/lists/* \
 && ln -sf /dev/stderr /var/log/nginx/error.log
EXPOSE 8000
STOPSIGNAL SIGQUIT
CMD ["nginx", "-g", "daemon off;"]
