-- nothing
/* here */ ;