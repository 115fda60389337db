// aws-local-stepfunctions uses Promise.withResolvers (Node 22); Node 20 needs this polyfill.
import "../lib/core/promise-with-resolvers";
