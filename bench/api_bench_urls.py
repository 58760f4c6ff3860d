"""The site's URLs plus `/bench/constant`: a bare DRF view answering a constant, the yardstick
of bench/api_bench.py (the framework's floor: no authentication, no database)."""

from django.urls import path
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from profiles.api.views import ApiView
from profiles_site.urls import urlpatterns as site_urlpatterns


class ConstantView(ApiView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    def get(self, request):
        return Response({"answer": 42})


urlpatterns = [path("bench/constant", ConstantView.as_view()), *site_urlpatterns]
