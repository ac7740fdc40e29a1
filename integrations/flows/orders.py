"""Order to cash: a paid/authorised storefront order becomes exactly one ERP Sales Order."""
