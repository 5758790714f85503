# syntax=docker/dockerfile:1
# The Zentinel incident operator: `docker build -t zentinel-incident-operator:0.1.0 .`
#
# Two stages: "build" makes a virtualenv with the pinned dependencies (requirements.lock, wheels
# only: nothing is compiled) and the operator's own wheel; the final stage copies that virtualenv
# onto a clean base, runs as uid 65532 and keeps no pip, setuptools, wheel or source tree.
# The chart runs it with a read-only root filesystem and a writable /tmp.

# Pin by version here; pin by digest (python:3.11.14-slim-trixie@sha256:...) where you build.
ARG PYTHON_IMAGE=python:3.11.14-slim-trixie

FROM ${PYTHON_IMAGE} AS build
ARG SETUPTOOLS_VERSION=84.2.1
ARG WHEEL_VERSION=0.48.0
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# Dependencies first: this layer is rebuilt only when the lock changes. The lock pins every file by
# its sha256 (regenerate it with scripts/lock, which runs pip-compile --generate-hashes).
COPY requirements.lock ./
RUN python -m venv /opt/operator \
    && /opt/operator/bin/pip install --require-hashes --no-deps --only-binary=:all: -r requirements.lock
# The operator's wheel, built with pinned build tools outside the runtime virtualenv.
COPY pyproject.toml README.md ./
COPY operator/ operator/
RUN python -m venv /opt/build \
    && /opt/build/bin/pip install "setuptools==${SETUPTOOLS_VERSION}" "wheel==${WHEEL_VERSION}" \
    && /opt/build/bin/pip wheel --no-deps --no-build-isolation --wheel-dir /wheels . \
    && /opt/operator/bin/pip install --no-deps /wheels/*.whl \
    && /opt/operator/bin/pip check \
    && /opt/operator/bin/pip uninstall --yes pip setuptools

FROM ${PYTHON_IMAGE}
# The operator's user; the same uid/gid as the chart's securityContext (runAsUser 65532).
RUN groupadd --system --gid 65532 operator \
    && useradd --system --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin operator \
    && python -m pip uninstall --yes pip setuptools wheel
COPY --from=build /opt/operator /opt/operator
ENV PATH=/opt/operator/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp
USER 65532:65532
WORKDIR /tmp
# 8080 the operator's /metrics, 8081 kopf's liveness endpoint (/healthz), 9443 the admission webhook.
EXPOSE 8080 8081 9443
ENTRYPOINT ["zentinel-operator", "run"]
