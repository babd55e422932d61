# One image with all three binaries: repoview-api, repoview-worker and the
# repoview admin CLI. Build: docker build -t repoview .
# Run: see docker-compose.yml and docs/deploy.md.

# ---- builder: the same packages as scripts/install-deps.sh, then CMake ----
FROM debian:bookworm AS builder
WORKDIR /src
COPY scripts/install-deps.sh scripts/install-deps.sh
RUN scripts/install-deps.sh && rm -rf /var/lib/apt/lists/*
COPY . .
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRV_TESTS=OFF \
 && cmake --build /build -j "$(nproc)" \
 && strip --strip-debug /build/repoview-api /build/repoview-worker /build/repoview

# ---- runtime: only the shared libraries the binaries link ----
FROM debian:bookworm-slim
# libgit2 (worker) and libcurl (worker, HTTPS to GitHub) need ca-certificates;
# curl is only for the container health check.
RUN apt-get update -q \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      libhiredis0.14 libevent-2.1-7 libgit2-1.5 libcurl4 libmsgpackc2 \
      libjansson4 libssl3 libbrotli1 zlib1g ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /var/lib/repoview \
      --shell /usr/sbin/nologin repoview \
 && install -d -o repoview -g repoview -m 0750 /var/lib/repoview
COPY --from=builder /build/repoview-api /build/repoview-worker /build/repoview \
     /usr/local/bin/

# Worker mirrors live under the data dir. Each container gets its own volume
# unless one is mounted: mirrors are a cache, rebuilt by a fetch when lost.
ENV REPOVIEW_DATA_DIR=/var/lib/repoview \
    REPOVIEW_LISTEN=0.0.0.0:8080 \
    REPOVIEW_REDIS_URL=redis://redis:6379/0
VOLUME /var/lib/repoview
WORKDIR /var/lib/repoview
USER repoview
EXPOSE 8080
CMD ["repoview-api"]
