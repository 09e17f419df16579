"""Azure Functions entry point (Python v2 model).

One ASGI app serves the whole REST API (routes like ``/models/{name}:cancel`` and ``//`` paths
that native route templates handle badly); blob and timer triggers are ordinary blueprints.
Heavy libraries are imported lazily so the host starts within Flex Consumption's limits.
"""
import azure.functions as func

from functions import dataset_events, reconcile
from loupe.api.app import create_app

app = func.AsgiFunctionApp(app=create_app(), http_auth_level=func.AuthLevel.ANONYMOUS)
app.register_functions(dataset_events.bp)
app.register_functions(reconcile.bp)
