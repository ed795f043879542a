# Cordon's image: `docker build -t cordon .`, then `docker run cordon run` (or docker compose).
# Build stage compiles the service alone (src/, tsconfig.image.json); the runtime stage holds the
# compiled code, the production dependencies and the shipped playbooks, and runs as the
# unprivileged `node` user on a read-only root filesystem (nothing is written outside /tmp).
FROM node:24-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-fund --no-audit
COPY tsconfig.json tsconfig.build.json tsconfig.image.json ./
COPY src ./src
RUN npx tsc -p tsconfig.image.json && npm prune --omit=dev --no-fund --no-audit

FROM node:24-bookworm-slim AS runtime
ENV NODE_ENV=production \
    CORDON_HTTP_HOST=0.0.0.0 \
    CORDON_HTTP_PORT=8080
WORKDIR /app
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY bin ./bin
COPY playbooks ./playbooks
USER node
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:8080/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "bin/cordon"]
CMD ["run"]
