# Berth container image. Two stages: build (compiles TypeScript and the SQLite
# addon) and a slim runtime with only production dependencies, running as a
# non-root user with the data directory as a volume.
FROM node:20-bookworm AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY web ./web
RUN npm ci --no-audit --no-fund && npm prune --omit=dev

FROM node:20-bookworm-slim
ENV NODE_ENV=production \
    BERTH_HTTP_ADDR=0.0.0.0:5000 \
    BERTH_STORAGE_ROOT=/var/lib/berth
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY config ./config
RUN mkdir -p /var/lib/berth && chown node:node /var/lib/berth
USER node
VOLUME ["/var/lib/berth"]
EXPOSE 5000
# Ready = the index and the data volume accept writes and enough disk is free (GET /readyz,
# over HTTPS when http.tlsCert is set). Give `docker stop` more than limits.shutdownTimeout
# (60 s) so uploads in progress can finish: docker stop -t 90, or stop_grace_period.
HEALTHCHECK --interval=30s --timeout=10s --start-period=20s --retries=3 \
  CMD ["node", "/app/dist/cli.js", "healthcheck", "--config", "/app/config/default.yaml"]
ENTRYPOINT ["node", "/app/dist/cli.js"]
CMD ["serve", "--config", "/app/config/default.yaml"]
