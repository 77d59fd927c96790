SELECT 1 -- :not ; comment
, :yes