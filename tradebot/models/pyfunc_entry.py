"""MLflow "models from code" entry of ensembles: logged with the model instead of a pickle."""

from mlflow.models import set_model

from tradebot.models.pyfunc import EnsemblePyfunc

set_model(EnsemblePyfunc())
