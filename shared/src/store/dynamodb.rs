//! DynamoDB backend of the item store (written by the store work).
