"""Azure Functions entry point (Python v2 model).

One ASGI app serves the whole REST API (routes like ``/models/{name}:cancel`` and ``//`` paths
that native route templates handle badly); blob and timer triggers are ordinary blueprints.
The HTTP function and the triggers share one service graph (``default_services()``), built
lazily so the host starts within Flex Consumption's limits (docs/azure.md).
"""
import azure.functions as func

from functions import dataset_events, reconcile
from loupe.api.app import create_app
from loupe.services import default_services

app = func.AsgiFunctionApp(app=create_app(default_services()), http_auth_level=func.AuthLevel.ANONYMOUS)
app.register_functions(dataset_events.bp)
app.register_functions(reconcile.bp)
