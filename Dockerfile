# Berth container image. Two stages on Node.js 22 (LTS): the build stage compiles the
# TypeScript and the SQLite addon (from source when no prebuilt binary can be fetched,
# with the python3, make and g++ of the full node image), then keeps only what runs; the
# runtime stage is the slim image with that, running as uid 1000 (node).
FROM node:22-bookworm AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY web ./web
COPY deploy/prune-addon.sh ./deploy/
RUN npm ci --no-audit --no-fund \
 && npm prune --omit=dev --no-audit --no-fund \
 && sh deploy/prune-addon.sh node_modules

FROM node:22-bookworm-slim
# The only BERTH_* variable is the configuration file's name, so no key of a mounted file is
# overridden: a file of yours mounted over /etc/berth/berth.yaml (or named by BERTH_CONFIG)
# decides everything.
ENV NODE_ENV=production \
    BERTH_CONFIG=/etc/berth/berth.yaml
COPY deploy/container.yaml /etc/berth/berth.yaml
COPY --from=build /app/node_modules /app/node_modules
COPY --from=build /app/dist /app/dist
COPY package.json /app/
COPY config /app/config
# `berth …` inside the container: docker compose exec berth berth user add alice
RUN chmod 755 /app/dist/cli.js && ln -s /app/dist/cli.js /usr/local/bin/berth \
 && mkdir -p /var/lib/berth && chown node:node /var/lib/berth
# The data is the volume itself (storage.root of /etc/berth/berth.yaml); a relative
# storage.root in a file of yours lands in it too.
WORKDIR /var/lib/berth
USER node
VOLUME ["/var/lib/berth"]
EXPOSE 5000
# Ready = the index and the data volume accept writes and enough disk is free (GET /readyz,
# over HTTPS when http.tlsCert is set), asked of the server with the container's own
# environment (BERTH_CONFIG). Images built in OCI format (podman and buildah's default)
# drop HEALTHCHECK: build with --format docker, or use the healthcheck of
# docker-compose.yml. Give `docker stop` more than limits.shutdownTimeout (60 s) so
# uploads in progress can finish: docker stop -t 90, or stop_grace_period.
HEALTHCHECK --interval=30s --timeout=10s --start-period=20s --retries=3 \
  CMD ["node", "/app/dist/cli.js", "healthcheck"]
ENTRYPOINT ["node", "/app/dist/cli.js"]
CMD ["serve"]
