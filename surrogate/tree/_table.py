"""What the tree grows on: the design matrix of a table's codes, and what each column means.

A tree splits numbers by thresholds, so a table (its rows as the codes of a
:class:`~training.tables.TableSchema`) becomes :meth:`TableSchema.one_hot`'s design matrix:
numeric columns, a 0/1 indicator of missing values for a numeric column that has them, and one
0/1 column per category. A missing number is filled with the column's median in the training
rows, the value a median imputer gives it, so a tree that never tests the indicator treats
missing rows as the imputing model does. A plain numeric array is its own design matrix.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from training.tables import OneHotColumn, TableSchema

Kind = Literal["value", "missing", "category"]


class TableDesign:
    """The map from codes (n, d) to the tree's design matrix, and the origin of its columns.

    ``schema`` is ``None`` for a plain numeric array, whose codes are the design matrix.
    """

    def __init__(self, schema: TableSchema | None, n_columns: int, fill: np.ndarray) -> None:
        self.schema = schema
        self.n_columns = n_columns
        self.fill = fill
        if schema is None:
            self.origins = [OneHotColumn(i, None, name=f"x{i}") for i in range(n_columns)]
        else:
            self.origins = schema.one_hot(np.zeros((1, n_columns)), fill=fill)[1]

    @classmethod
    def of_codes(cls, schema: TableSchema | None, codes: np.ndarray) -> TableDesign:
        """The design of a table whose training rows have ``codes`` (medians fill missing
        numbers; a column with no value at all cannot occur, the schema refuses it)."""
        fill = np.zeros(codes.shape[1])
        if schema is not None:
            for index in schema.numeric_indices:
                present = codes[~np.isnan(codes[:, index]), index]
                fill[index] = float(np.median(present)) if present.size else 0.0
        return cls(schema, codes.shape[1], fill)

    def matrix(self, codes: np.ndarray) -> np.ndarray:
        """The design matrix of ``codes``."""
        if self.schema is None:
            return codes
        return self.schema.one_hot(codes, fill=self.fill)[0]

    def kind(self, feature: int) -> Kind:
        """What design column ``feature`` holds: a value, a missing indicator or a category."""
        origin = self.origins[feature]
        if origin.category is not None:
            return "category"
        return "missing" if origin.missing else "value"

    def column(self, feature: int) -> int:
        """The table column design column ``feature`` comes from."""
        return self.origins[feature].column

    def category(self, feature: int) -> int:
        """The category code a category's design column indicates."""
        category = self.origins[feature].category
        assert category is not None, "not a category's column"
        return category

    def category_names(self, column: int) -> list[str]:
        """Names of table column ``column``'s categories (code order)."""
        assert self.schema is not None, "a plain array has no categories"
        return self.schema.columns[column].category_names()

    def has_missing(self, column: int) -> bool:
        """Whether numeric table column ``column`` had missing values in the training rows."""
        return self.schema is not None and self.schema.columns[column].has_missing

    def design_names(self, column_names: list[str]) -> list[str]:
        """Names of the design columns, given the table columns' names."""
        names = []
        for feature in range(len(self.origins)):
            column = column_names[self.column(feature)]
            kind = self.kind(feature)
            if kind == "category":
                category = self.category_names(self.column(feature))[self.category(feature)]
                names.append(f"{column}={category}")
            else:
                names.append(f"{column} missing" if kind == "missing" else column)
        return names
