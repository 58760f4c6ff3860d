"""The site's URLs plus two yardsticks of bench/api_bench.py:

- `/bench/constant`, a bare DRF view answering a constant (the framework's floor: no
  authentication, no database);
- `/bench/round_trips`, a plain Django view that makes a profile read's two round trips and
  nothing else: the rate limit's count with two cache keys read (one Redis round trip on
  CACHE_URL) and a prepared `SELECT 1` on PostgreSQL, answering a constant. What it costs is
  what any read by a token must cost, whatever its code.
"""

from django.db import connection
from django.http import HttpResponse
from django.urls import path
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from profiles.api.throttling import send_read_and_count
from profiles.api.views import ApiView
from profiles_site.urls import urlpatterns as site_urlpatterns


class ConstantView(ApiView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    def get(self, request):
        return Response({"answer": 42})


def round_trips(request):
    send_read_and_count(["bench:a", "bench:b"], counter="bench:count", period=61)()
    connection.ensure_connection()
    connection.connection.execute("SELECT 1", prepare=True).fetchone()
    return HttpResponse(b'{"status":"ok","data":{"answer":42}}', content_type="application/json")


urlpatterns = [
    path("bench/constant", ConstantView.as_view()),
    path("bench/round_trips", round_trips),
    *site_urlpatterns,
]
