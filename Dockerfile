# The worker image (docker-compose.yml). Also carries starter.py for support commands:
#   docker compose run --rm worker python starter.py status change-...
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
# Fonts for the PDF invoice: Latin and Japanese organisation names.
RUN apt-get update && apt-get install -y --no-install-recommends fonts-dejavu-core \
        fonts-ipaexfont-gothic && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml README.md ./
COPY subchange ./subchange
COPY workflows ./workflows
COPY activities ./activities
COPY state_machines ./state_machines
COPY worker.py starter.py api.py ./
RUN pip install --no-cache-dir . && useradd --system --uid 10001 subchange
USER subchange
CMD ["python", "worker.py"]
