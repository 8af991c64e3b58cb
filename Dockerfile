# skein on the official Deno image. The Deno version matches .deno-version.
ARG DENO_VERSION=2.9.6
FROM denoland/deno:${DENO_VERSION}

WORKDIR /opt/skein
COPY deno.json deno.lock ./
COPY cmd/ cmd/
COPY common/ common/
COPY config/ config/
COPY control/ control/
COPY mesh/ mesh/
# Resolve and cache every dependency at build time so the container starts offline.
RUN deno cache cmd/skein.ts

RUN mkdir -p /etc/skein /var/lib/skein && chown -R deno:deno /etc/skein /var/lib/skein
USER deno

# 7400 control API, 7401 Raft peers, 15000 proxy admin, 15001 proxy http_proxy, 15443 proxy inbound.
EXPOSE 7400 7401 15000 15001 15443
VOLUME ["/var/lib/skein"]

ENTRYPOINT ["deno", "run", "--v8-flags=--no-memory-reducer", "--allow-net", "--allow-read", "--allow-write", "--allow-env", "--allow-run", "--allow-sys", "--unstable-net", "--cached-only", "/opt/skein/cmd/skein.ts"]
CMD ["--help"]
