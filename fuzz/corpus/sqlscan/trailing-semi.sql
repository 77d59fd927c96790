INSERT INTO t VALUES (:a, :b);  ;; -- done
/* bye */