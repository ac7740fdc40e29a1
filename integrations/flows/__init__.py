"""One module per flow (orders, inventory, fulfilment, refunds, payouts, drift). Importing this
package registers every flow's exception types."""
import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
