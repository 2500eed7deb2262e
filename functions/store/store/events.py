"""EventBridge entry point of the store (choreography engine): PageModerated in, PageStored out."""

from engines.choreography import adapt
from store.handler import lambda_handler as store

lambda_handler = adapt("store", store)
