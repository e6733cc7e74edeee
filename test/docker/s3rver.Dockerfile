# TEST ONLY: an S3-compatible server standing in for MinIO, which is not in Debian's packages and
# cannot be pulled here. s3rver (a devDependency of Eddy, same version) on the local base image
# (scripts/docker-base-image.sh); npm install needs the npm registry (build with --network host).
# test/docker/docker-compose.s3rver.yml swaps it in for the minio services of
# deploy/docker-compose.yml. Two traps (docs/STACK-NOTES.md): s3rver runs under
# --openssl-legacy-provider (paginated listings fail without it), and Eddy's S3 client sets the
# checksum options to WHEN_REQUIRED.
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
ARG S3RVER_VERSION=3.7.1
WORKDIR /opt/s3rver
RUN npm install --no-audit --no-fund --no-package-lock "s3rver@${S3RVER_VERSION}" && npm cache clean --force
USER node
ENTRYPOINT ["node", "--openssl-legacy-provider", "/opt/s3rver/node_modules/s3rver/bin/s3rver.js"]
