"""Drift monitoring: scheduled checks that find gaps between the storefronts and the ERP before they
compound into month-end. The registry (registry.py) runs one check and keeps its findings; each
check lives in checks/; screens call services.py; django-q2 calls tasks.py."""
