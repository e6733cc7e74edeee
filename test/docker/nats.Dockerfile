# TEST ONLY: a nats-server image for machines that reach no image registry. It is the local base
# image (scripts/docker-base-image.sh: glibc, busybox with wget for the healthcheck) plus this
# machine's nats-server binary (Debian's package, scripts/ensure-nats-server.sh), copied into the
# build context by test/e2e/docker-compose.test.ts. deploy/docker-compose.yml defaults to the official
# nats image; EDDY_NATS_IMAGE points it here.
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
COPY nats-server /usr/local/bin/nats-server
ENTRYPOINT ["/usr/local/bin/nats-server"]
