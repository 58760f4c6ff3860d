"""The site's settings with the bench's URLs (api_bench_urls): the production app plus one
constant view to compare with. Only bench/api_bench.py's gunicorn loads this module."""

from profiles_site.settings import *  # noqa: F403

ROOT_URLCONF = "api_bench_urls"
