"""The back-office's one way of showing a time, for the datetime fields Django renders itself
(read-only fields, list columns): like `profiles.admin.display.moment`, to the second."""

DATETIME_FORMAT = "Y-m-d H:i:s T"
SHORT_DATETIME_FORMAT = "Y-m-d H:i:s T"
DATE_FORMAT = "Y-m-d"
SHORT_DATE_FORMAT = "Y-m-d"
