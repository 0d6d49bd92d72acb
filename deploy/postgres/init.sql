-- Runs once, when the PostgreSQL volume is first initialised (docker-entrypoint-initdb.d),
-- as POSTGRES_USER. Each service owns its database; none reads another's.
CREATE DATABASE intake;
CREATE DATABASE routing;
CREATE DATABASE followup;
