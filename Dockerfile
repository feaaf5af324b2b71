FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 MASTERY_ENV=production
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
RUN DJANGO_SECRET_KEY=collectstatic-only python manage.py collectstatic --noinput
RUN useradd --create-home mastery
USER mastery
EXPOSE 8000
CMD ["gunicorn", "mastery.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--timeout", "60"]
