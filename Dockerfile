# vkwhisper's container image: `vkwhisper serve` (the OpenAI-compatible
# transcription server) on 0.0.0.0:8000, on any Vulkan GPU the container is
# given (/dev/dri for AMD and Intel, the NVIDIA container toolkit for NVIDIA)
# or on the CPU when there is none. docs/DEPLOY.md explains it all.
#
#   docker build -t vkwhisper .                              # compiles (runtime, the default target)
#   docker build --target runtime-prebuilt -t vkwhisper .    # packages target/release/vkwhisper
#   docker run --rm -p 8000:8000 -v vkwhisper-models:/var/cache/vkwhisper vkwhisper
#   docker run --rm -p 8000:8000 --device /dev/dri --group-add "$(stat -c %g /dev/dri/renderD128)" \
#       -v vkwhisper-models:/var/cache/vkwhisper vkwhisper --model base --device vulkan
#
# Stages: `runtime-base` (Debian slim + the Vulkan loader and Mesa's drivers,
# the user, the settings), `runtime-prebuilt` (runtime-base + a binary built
# on the host), `build` (cargo) and `runtime` (runtime-base + the binary from
# `build`; the default). runtime-prebuilt comes before `build` so that even
# the legacy builder, which runs every stage up to the target, does not
# compile for it.
#
# Without a registry, scripts/docker-base.sh makes local stand-ins for the
# two base images below (debootstrap + docker import); this file is the same.
# No `# syntax=` line and no RUN --mount: it builds with the legacy builder and
# with any BuildKit without fetching a frontend image.

ARG DEBIAN_IMAGE=debian:bookworm-slim
ARG RUST_IMAGE=rust:1-bookworm

# ---------------------------------------------------------------------------
FROM ${DEBIAN_IMAGE} AS runtime-base

# The Vulkan loader and Mesa's Vulkan drivers: RADV (AMD), ANV (Intel) and
# lavapipe (the CPU; listed by `vkwhisper devices`, never chosen by --device
# auto). NVIDIA's driver comes from the host through the container toolkit.
# python3-minimal satisfies Mesa's `python3 | python3-minimal` (a helper
# script) without the full python3 and its standard library.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libvulkan1 mesa-vulkan-drivers python3-minimal ca-certificates \
 && rm -rf /var/lib/apt/lists/*

# A non-root user (numeric ids, so Kubernetes' runAsNonRoot can check them)
# in the video group (44 on Debian) and a render group. The GID that counts
# is the one owning /dev/dri/renderD* on the host, which differs between
# distributions: give it at run time with `--group-add <gid>` (Docker),
# `group_add` (Compose) or `supplementalGroups` (Kubernetes), or bake it in
# with `--build-arg RENDER_GID=<gid>`.
ARG UID=10001
ARG GID=10001
ARG RENDER_GID=109
RUN groupadd --system --gid "${GID}" vkwhisper \
 && { getent group render >/dev/null || groupadd --system --gid "${RENDER_GID}" render; } \
 && useradd --system --uid "${UID}" --gid "${GID}" --groups video,render \
      --home-dir /home/vkwhisper --create-home --shell /usr/sbin/nologin vkwhisper \
 && install -d -o "${UID}" -g "${GID}" -m 0755 /var/cache/vkwhisper

# The models live in the cache (`vkwhisper models pull`, or a --model name
# downloaded once at start): keep it in a volume. A read-only mount of an
# existing cache works too; the server never writes there unless it
# downloads.
ENV VKWHISPER_CACHE=/var/cache/vkwhisper \
    VKWHISPER_HOST=0.0.0.0 \
    VKWHISPER_PORT=8000 \
    NVIDIA_DRIVER_CAPABILITIES=compute,graphics,utility
VOLUME ["/var/cache/vkwhisper"]
WORKDIR /home/vkwhisper
# The uid alone: Docker then adds the groups /etc/group gives the user.
USER ${UID}
EXPOSE 8000
# SIGTERM: stop accepting, finish the requests in flight (--shutdown-grace,
# 120 s by default), exit. Give the container that long: `docker stop -t 130`,
# Compose's stop_grace_period, Kubernetes' terminationGracePeriodSeconds.
STOPSIGNAL SIGTERM
# /health is 200 once the --model models are loaded (503 while loading).
# bash's /dev/tcp: no curl or wget in the image.
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${VKWHISPER_PORT:-8000} && printf 'GET /health HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && read -r -t 4 _ code _ <&3 && [ \"$code\" = 200 ]"]
ENTRYPOINT ["/usr/local/bin/vkwhisper", "serve"]

ARG DEBIAN_IMAGE
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="vkwhisper" \
      org.opencontainers.image.description="Whisper speech-to-text on Vulkan GPUs (or the CPU): an OpenAI-compatible transcription server" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.base.name="${DEBIAN_IMAGE}" \
      org.opencontainers.image.documentation="docs/DEPLOY.md"

# ---------------------------------------------------------------------------
# A binary built on the host (`cargo build --release -p vkwhisper-cli`),
# for glibc 2.36 or older (bookworm's). PREBUILT_BIN is a path in the build
# context; .dockerignore lets only these two through.
FROM runtime-base AS runtime-prebuilt
ARG PREBUILT_BIN=target/release/vkwhisper
COPY --chown=0:0 ${PREBUILT_BIN} /usr/local/bin/vkwhisper

# ---------------------------------------------------------------------------
FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY crates ./crates
# The release profile's line tables are stripped below anyway.
ENV CARGO_PROFILE_RELEASE_DEBUG=false
RUN cargo build --release --locked -p vkwhisper-cli \
 && objcopy --strip-debug target/release/vkwhisper /usr/local/bin/vkwhisper \
 && /usr/local/bin/vkwhisper --version

# ---------------------------------------------------------------------------
FROM runtime-base AS runtime
COPY --from=build /usr/local/bin/vkwhisper /usr/local/bin/vkwhisper
