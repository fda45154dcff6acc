# A stand-in for nginx:1.27-alpine made from Debian 12's nginx, for machines that cannot reach Docker Hub
# (deploy/compose.local-images.yaml). As in the official image, /etc/nginx/conf.d/*.conf is read (compose.yaml
# mounts deploy/nginx.conf there), nginx stays in the foreground and logs to the container's output.
ARG DEBIAN_IMAGE=debian:bookworm-slim
FROM ${DEBIAN_IMAGE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends nginx-light \
    && rm -rf /var/lib/apt/lists/* /etc/nginx/sites-enabled/default \
    && ln -sf /dev/stdout /var/log/nginx/access.log \
    && ln -sf /dev/stderr /var/log/nginx/error.log
# SIGQUIT: nginx finishes the requests in flight before it stops (as in the official image).
STOPSIGNAL SIGQUIT
CMD ["nginx", "-g", "daemon off;"]
