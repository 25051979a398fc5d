-- Shipping details a customer chose to share with the merchant (issue 15):
-- the PR's sealed blob, opaque to the CPP, kept to put in the payment's PN.
-- NULL when the customer shared nothing.
ALTER TABLE cpp_payments ADD COLUMN shipping {blob};
