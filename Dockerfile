# The nonstop operator image.
#
#   docker build -t ghcr.io/nonstop-dev/nonstop:<appVersion> .      (or podman/buildah build)
#
# BASE is any image with python3 (>= 3.11) and its venv module; the default is the public
# python image. e2e/images/build.sh builds it with BASE set to a minimal Debian bookworm made
# by mmdebstrap (python3, python3-venv, ca-certificates), without any registry.
# Runs as uid 65532 on a read-only root filesystem: nothing is written at run time.
ARG BASE=docker.io/library/python:3.11-slim

# The dependencies, read from pyproject.toml: a change elsewhere in that file gives the same
# requirements.txt and so reuses the layers that install them.
FROM ${BASE} AS requirements
COPY pyproject.toml /src/pyproject.toml
RUN python3 -c 'import tomllib; print("\n".join(tomllib.load(open("/src/pyproject.toml", "rb"))["project"]["dependencies"]))' > /requirements.txt

FROM ${BASE} AS deps
ENV PYTHONDONTWRITEBYTECODE=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# The package index (--build-arg PIP_INDEX_URL=... for a mirror).
ARG PIP_INDEX_URL=https://pypi.org/simple
RUN python3 -m venv /opt/nonstop
# The dependencies first, so that a change to the code reuses this layer. Out goes the
# asyncio copy of the whole Kubernetes client that kubernetes >= 35 ships (kubernetes/aio,
# ~70 MB with its .pyc; nothing imports it: kopf has its own client).
# Modules are precompiled once, with .pyc files checked by hash rather than by file time, so
# they stay valid whatever happens to the times and a read-only root never needs a write.
# The optional secret "pipcert" is a CA bundle for pip when TLS to the index goes through an
# inspecting proxy (buildah/docker build --secret id=pipcert,src=FILE); it stays out of the image.
COPY --from=requirements /requirements.txt /src/requirements.txt
RUN --mount=type=secret,id=pipcert \
    if [ -s /run/secrets/pipcert ]; then export PIP_CERT=/run/secrets/pipcert; fi; \
    /opt/nonstop/bin/pip install --quiet --no-compile 'setuptools>=70.1' -r /src/requirements.txt \
 && rm -rf /opt/nonstop/lib/python3*/site-packages/kubernetes/aio \
 && /opt/nonstop/bin/python -m compileall -q -f -j 0 --invalidation-mode unchecked-hash /opt/nonstop/lib
# Then the package itself, without its dependencies and with the setuptools installed above
# (no build isolation: nothing is downloaded again); then out go the build tools, and all that
# the operator and the kubectl plugin import must load.
FROM deps AS build
COPY pyproject.toml README.md /src/
COPY operator/ /src/operator/
RUN /opt/nonstop/bin/pip install --quiet --no-compile --no-deps --no-build-isolation /src \
 && /opt/nonstop/bin/pip uninstall --quiet --yes setuptools pip \
 && /opt/nonstop/bin/python -m compileall -q -f --invalidation-mode unchecked-hash /opt/nonstop/lib/python3*/site-packages/nonstop \
 && /opt/nonstop/bin/python -c 'import nonstop.handlers, nonstop.cli.plugin' \
 && /opt/nonstop/bin/nonstop --version

FROM ${BASE}
# kopf names its peer after the user (getpass.getuser()), which fails with "KeyError:
# 'getpwuid(): uid not found: 65532'" for a uid that /etc/passwd lacks: give 65532 a name.
RUN echo 'nonstop:x:65532:65532:nonstop:/nonexistent:/usr/sbin/nologin' >> /etc/passwd \
 && echo 'nonstop:x:65532:' >> /etc/group
COPY --from=build /opt/nonstop /opt/nonstop
ENV PATH=/opt/nonstop/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
ARG BASE
ARG VERSION=unknown
ARG REVISION=unknown
LABEL org.opencontainers.image.title="nonstop" \
      org.opencontainers.image.description="Zero-downtime rollouts for Kubernetes: rolling, blue-green, canary, shadow and feature-toggle rollouts." \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.base.name="${BASE}"
USER 65532:65532
WORKDIR /
EXPOSE 8080
ENTRYPOINT ["/opt/nonstop/bin/nonstop"]
CMD ["run"]
