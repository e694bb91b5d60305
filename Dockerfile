# osrf-prefork as a container image: the single binary on an empty (scratch) base.
#
#   docker build -t osrf-prefork .
#   docker run --rm osrf-prefork version
#   docker run -d --name math --network host \
#     -v /openils/conf:/openils/conf:ro -v /srv/osrf-apps:/apps:ro \
#     osrf-prefork serve --service opensrf.math --app /apps/math.ts --logfile stderr
#
# Service modules and config files are not in the image: mount them. Configs must name
# XMPP hosts by address (127.0.0.1, not localhost): there is no /etc/hosts in the image.

# --- build: compile dist/osrf-prefork-linux-x64 with the Bun that package.json pins ---------
# Pinned to amd64 so the glibc paths below exist whatever machine builds the image.
FROM --platform=linux/amd64 node:22-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
# Install scripts stay on: the bun package's postinstall puts the real runtime in place.
RUN npm ci
COPY build.ts tsconfig.json bunfig.toml ./
COPY src ./src
# build.ts takes its flags (and the drones' bytecode order) and the package builder from scripts/.
COPY scripts ./scripts
RUN npx bun run build.ts linux-x64 && ./dist/osrf-prefork-linux-x64 version

# --- run: the binary plus exactly what `ldd dist/osrf-prefork-linux-x64` lists -------------
# glibc from the build stage (Debian 12); sources are the real files, not symlinks.
# What the binary also needs, /proc and /dev/null (drones are spawned with stdin from it),
# every container runtime provides.
FROM --platform=linux/amd64 scratch
COPY --from=build /src/dist/osrf-prefork-linux-x64 /osrf-prefork
COPY --from=build /usr/lib/x86_64-linux-gnu/libc.so.6 /usr/lib/x86_64-linux-gnu/libpthread.so.0 /usr/lib/x86_64-linux-gnu/libdl.so.2 /usr/lib/x86_64-linux-gnu/libm.so.6 /lib/x86_64-linux-gnu/
COPY --from=build /usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 /lib64/ld-linux-x86-64.so.2
# nobody: no passwd file needed for a numeric user.
USER 65534:65534
ENTRYPOINT ["/osrf-prefork"]
CMD ["--help"]
