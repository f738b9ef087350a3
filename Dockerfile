# The worker image (docker-compose.yml). Also carries starter.py for support commands:
#   docker compose run --rm worker python starter.py status change-...
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
# Fonts for the PDF invoice: Latin and Japanese organisation names. The image takes IPAexGothic
# from Debian, so it needs neither matplotlib-fontja nor the matplotlib it declares.
RUN apt-get update && apt-get install -y --no-install-recommends fonts-dejavu-core \
        fonts-ipaexfont-gothic && rm -rf /var/lib/apt/lists/*
# The dependencies first, from the hash-checked production lock, in a layer of their own: a
# change to the sources rebuilds only the layers below, not the downloads and wheels.
# The build backend (setuptools) comes from its own lock, so building the project below fetches
# nothing either.
COPY requirements/production.txt requirements/build.txt ./requirements/
RUN pip install --no-cache-dir --require-hashes -r requirements/production.txt \
        -r requirements/build.txt
COPY pyproject.toml README.md ./
COPY subchange ./subchange
COPY workflows ./workflows
COPY activities ./activities
COPY state_machines ./state_machines
COPY worker.py starter.py api.py ./
# --no-deps: everything it needs came from the lock above; --no-build-isolation: built with the
# locked setuptools, not one fetched for the build. Nothing unlocked comes in here.
RUN pip install --no-cache-dir --no-deps --no-build-isolation . \
        && useradd --system --uid 10001 subchange
USER subchange
CMD ["python", "worker.py"]
