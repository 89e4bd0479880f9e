"""MLflow "models from code" entry: logged with the model instead of a pickled object."""

from mlflow.models import set_model

from tradebot.models.pyfunc import DirectionPyfunc

set_model(DirectionPyfunc())
